import { Slot } from "@radix-ui/react-slot";
import { forwardRef, type ButtonHTMLAttributes } from "react";

type Tone = "plain" | "primary" | "danger";

const TONES: Record<Tone, string> = {
  plain: "border-rule-strong text-fg hover:bg-fg hover:text-ink",
  primary: "border-fg bg-fg text-ink hover:bg-transparent hover:text-fg",
  danger: "border-signal text-signal hover:bg-signal hover:text-signal-ink",
};

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  tone?: Tone;
  /** The button's request is under way: it is disabled and says so. */
  busy?: boolean;
  asChild?: boolean;
}

export const Button = forwardRef<HTMLButtonElement, ButtonProps>(function Button(
  { tone = "plain", busy = false, disabled, asChild = false, className = "", children, ...rest },
  ref,
) {
  const Component = asChild ? Slot : "button";
  return (
    <Component
      ref={ref}
      disabled={disabled || busy}
      aria-busy={busy || undefined}
      className={`inline-flex min-h-8 items-center gap-2 whitespace-nowrap border px-3 py-1 font-mono text-xs uppercase tracking-[0.1em] transition-colors disabled:cursor-not-allowed disabled:border-rule disabled:bg-transparent disabled:text-fg-faint ${TONES[tone]} ${className}`}
      {...rest}
    >
      {children}
      {busy ? <span aria-hidden="true">…</span> : null}
    </Component>
  );
});
