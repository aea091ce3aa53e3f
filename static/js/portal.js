// The portal's few behaviours that need a script; every page works without it.
"use strict";

// Preview the chosen source image before it is uploaded.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.dataset.preview) return;
  const preview = document.getElementById(input.dataset.preview);
  if (!preview) return;
  const file = input.files && input.files[0];
  if (preview.dataset.url) URL.revokeObjectURL(preview.dataset.url);
  if (file && file.type.startsWith("image/")) {
    preview.dataset.url = URL.createObjectURL(file);
    preview.src = preview.dataset.url;
    preview.hidden = false;
  } else {
    preview.hidden = true;
    preview.removeAttribute("src");
  }
});

// "Copy prompt": shown only where the clipboard can be used; the prompt stays selectable text.
function setUpCopyButtons(root) {
  for (const button of root.querySelectorAll("[data-copy]")) {
    if (!navigator.clipboard) continue;
    button.hidden = false;
    if (button.dataset.ready) continue;
    button.dataset.ready = "1";
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      await navigator.clipboard.writeText(source.textContent.trim());
      const label = button.textContent;
      button.textContent = button.dataset.copied;
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  }
}
document.addEventListener("DOMContentLoaded", () => setUpCopyButtons(document));
// htmx:load fires for every piece of content htmx puts into the page.
document.addEventListener("htmx:load", (event) => setUpCopyButtons(event.target));
