// A glued value never breaks inside itself when it is a number or a short phrase (book.css);
// a glued clause or sentence (longer than LONG characters) wraps as the prose around it does.
document.addEventListener("DOMContentLoaded", () => {
  const LONG = 24;
  document.querySelectorAll("span.pasted-text").forEach((span) => {
    if (span.textContent.length > LONG) span.classList.add("bn-long");
  });
});
