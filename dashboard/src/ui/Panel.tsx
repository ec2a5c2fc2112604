import { useId, type ReactNode } from "react";

/** A titled region with a hairline rule: no cards, no shadows. */
export function Panel({
  title,
  aside,
  children,
  className = "",
}: {
  title: string;
  aside?: ReactNode;
  children: ReactNode;
  className?: string;
}) {
  const id = useId();
  return (
    <section aria-labelledby={id} className={`border-t border-rule-strong pt-2 ${className}`}>
      <div className="mb-2 flex flex-wrap items-baseline justify-between gap-2">
        <h2 id={id} className="text-sm font-semibold uppercase tracking-[0.14em]">
          {title}
        </h2>
        {aside}
      </div>
      {children}
    </section>
  );
}
