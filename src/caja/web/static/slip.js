// The slip's "Imprimir" button; everything else on the page works without JavaScript.
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
