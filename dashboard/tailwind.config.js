/** Tokens of the control room: neutrals, three state hues, one signal colour for attention. */
export default {
  content: ["./index.html", "./src/**/*.{ts,tsx}"],
  theme: {
    colors: {
      transparent: "transparent",
      current: "currentColor",
      ink: { DEFAULT: "#0b0d0e", raised: "#121516", sunk: "#070808" },
      rule: { DEFAULT: "#2c3133", strong: "#4a5154" },
      fg: { DEFAULT: "#eef0ea", muted: "#b4bbb5", faint: "#8d958f" },
      live: "#7fd0ff",
      done: "#8fdc9f",
      hold: "#e3d27a",
      signal: { DEFAULT: "#ff7a2e", ink: "#1a0c04" },
    },
    fontFamily: {
      sans: ['"Archivo Variable"', "ui-sans-serif", "sans-serif"],
      mono: ['"IBM Plex Mono"', "ui-monospace", "monospace"],
    },
    extend: {
      fontSize: { "2xs": ["0.6875rem", "1rem"] },
    },
  },
  plugins: [],
};
