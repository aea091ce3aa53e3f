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
