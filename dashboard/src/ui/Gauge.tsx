/** A labelled bar: value against a limit (or a 0..1 ratio), with the figures in text. */
export function Gauge({
  label,
  value,
  max,
  text,
  alert = false,
}: {
  label: string;
  value: number;
  max: number | null;
  text: string;
  alert?: boolean;
}) {
  const ratio = max && max > 0 ? Math.min(value / max, 1) : null;
  return (
    <div className="min-w-0">
      <div className="label-caps">{label}</div>
      <div className="num text-lg leading-tight">{text}</div>
      <div
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={max && max > 0 ? max : 1}
        aria-valuenow={ratio === null ? 0 : value}
        aria-valuetext={text}
        className="mt-1 h-1.5 w-full bg-rule"
      >
        {ratio !== null ? (
          <div className={`h-full ${alert ? "bg-signal" : "bg-fg"}`} style={{ width: `${ratio * 100}%` }} />
        ) : null}
      </div>
    </div>
  );
}
