// The pages' one script, optional: a copy button beside each value the
// settings cards mark with class "copy". Without it the values are still
// selected whole by one click or tap (CSS user-select: all).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (!navigator.clipboard) return;
  for (const el of document.querySelectorAll(".copy")) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "copy-button";
    const label = b.textContent = document.documentElement.dataset.copy || "Copy";
    const done = document.documentElement.dataset.copied || "Copied";
    b.setAttribute("aria-label", label + " " + el.textContent);
    b.addEventListener("click", () => {
      navigator.clipboard.writeText(el.textContent).then(() => {
        b.textContent = done;
        setTimeout(() => { b.textContent = label; }, 2000);
      }, () => {});
    });
    el.after(b);
  }
});
