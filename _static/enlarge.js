// Click to enlarge: an image of the book shown smaller than its natural size (a phone, a
// detailed figure) gets the class bn-zoomable; a click opens it at full size in an overlay that
// scrolls, and a click or Escape closes it. An image shown at under 9/10 of its size (every
// figure on a phone) says so under it: its lettering is small until enlarged.
// An image's size is the width its page gives it (a figure of twice the pixels, for a sharp
// high-density screen, says its width in CSS pixels), else its own pixels.
(function () {
  function size(img) {
    const given = img.style.width.endsWith("px") ? parseFloat(img.style.width) : 0;
    return given || img.naturalWidth;
  }
  function mark(img) {
    const shown = img.getBoundingClientRect().width;
    const natural = size(img);
    const zoom = natural && shown && natural > shown * 1.05;
    img.classList.toggle("bn-zoomable", !!zoom);
    const small = zoom && shown < 0.9 * natural;
    let hint = img.nextElementSibling;
    if (!(hint && hint.classList.contains("bn-zoom-hint"))) hint = null;
    if (small && !hint) {
      hint = document.createElement("span");
      hint.className = "bn-zoom-hint";
      hint.textContent = "Tap or click the figure to enlarge it";
      hint.addEventListener("click", () => open(img));
      img.insertAdjacentElement("afterend", hint);
    } else if (!small && hint) {
      hint.remove();
    }
  }
  function open(img) {
    const overlay = document.createElement("div");
    overlay.className = "bn-zoom-overlay";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", "Enlarged figure (click or press Escape to close)");
    const big = document.createElement("img");
    big.src = img.src;
    big.alt = img.alt;
    big.style.width = `${size(img)}px`;
    overlay.appendChild(big);
    const close = () => { overlay.remove(); document.removeEventListener("keydown", onKey); };
    const onKey = (e) => { if (e.key === "Escape") close(); };
    overlay.addEventListener("click", close);
    document.addEventListener("keydown", onKey);
    document.body.appendChild(overlay);
  }
  function setup() {
    const imgs = document.querySelectorAll("article img");
    // marked again whenever an image's shown size changes (loading, layout, a resized window)
    const watch = "ResizeObserver" in window ? new ResizeObserver((es) => es.forEach((e) => mark(e.target))) : null;
    imgs.forEach((img) => {
      mark(img);
      img.addEventListener("load", () => mark(img));
      if (watch) watch.observe(img);
      img.addEventListener("click", () => { mark(img); if (img.classList.contains("bn-zoomable")) open(img); });
    });
    window.addEventListener("load", () => imgs.forEach(mark));
    window.addEventListener("resize", () => imgs.forEach(mark));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
