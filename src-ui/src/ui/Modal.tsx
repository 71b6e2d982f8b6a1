// A dialog over the page: the focus moves to its Close button and goes
// back where it was once it closes; Escape, Close or a click outside
// closes it.

import { useEffect, useRef, type ReactNode } from "react";
import { useEscape } from "./hooks";

export function Modal({
  className,
  label,
  labelledBy,
  close,
  actions,
  children,
}: {
  className: string;
  /** The dialog's name, when no heading inside names it (`labelledBy`). */
  label?: string;
  labelledBy?: string;
  close: () => void;
  /** Buttons or links before Close. */
  actions?: ReactNode;
  children: ReactNode;
}) {
  const closeRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    closeRef.current?.focus();
    return () => opener?.focus?.();
  }, []);
  useEscape(true, close);
  return (
    <div className="modal-backdrop" onClick={close}>
      <div
        className={className}
        role="dialog"
        aria-modal="true"
        aria-label={label}
        aria-labelledby={labelledBy}
        onClick={(e) => e.stopPropagation()}
      >
        {children}
        <div className="actions">
          {actions}
          <button type="button" ref={closeRef} onClick={close}>
            Close
          </button>
        </div>
      </div>
    </div>
  );
}
