// A table or an equation wider than the column scrolls in its own box (book.css); on a phone
// that box looks like a table or an equation cut off. One that scrolls gets a line above it
// saying so, and a shadow on the side that has more, until the reader has scrolled there.
(function () {
  const BOXES = [
    { find: ".cell_output table, article table.table", text: "Scroll the table sideways for more columns →" },
    { find: 'mjx-container[display="true"]', text: "Scroll the equation sideways for the rest →" },
  ];
  function cue(box, text) {
    // the line goes above the box: above an equation's display block (div.math may lay out its
    // children in a row, and the line would squeeze the equation)
    const anchor = box.closest("div.math") || box;
    let line = anchor.previousElementSibling;
    const has = line && line.classList.contains("bn-scroll-cue");
    const scrolls = box.scrollWidth > box.clientWidth + 1;
    if (scrolls && !has) {
      line = document.createElement("p");
      line.className = "bn-scroll-cue";
      line.textContent = text;
      anchor.parentNode.insertBefore(line, anchor);
    } else if (!scrolls && has) {
      line.remove();
    }
    box.classList.toggle("bn-scrolls", scrolls);
    box.classList.toggle("bn-more-left", scrolls && box.scrollLeft > 1);
    box.classList.toggle("bn-more-right",
      scrolls && box.scrollLeft + box.clientWidth < box.scrollWidth - 1);
  }
  const watched = new Set();
  const boxes = [];
  // checked again whenever a box or its content changes size (fonts, typeset maths, a window)
  const watch = "ResizeObserver" in window
    ? new ResizeObserver((es) => es.forEach((e) => {
        const b = boxes.find((x) => x.el === e.target || x.el.contains(e.target));
        if (b) cue(b.el, b.text);
      })) : null;
  function collect() {   // the boxes on the page now (MathJax adds its containers later)
    BOXES.forEach(({ find, text }) => document.querySelectorAll(find).forEach((el) => {
      if (watched.has(el)) return;
      watched.add(el);
      boxes.push({ el, text });
      el.addEventListener("scroll", () => cue(el, text), { passive: true });
      if (watch) [el, ...el.children].forEach((c) => watch.observe(c));
    }));
    all();
  }
  function all() { boxes.forEach((b) => cue(b.el, b.text)); }
  function setup() {
    collect();
    window.addEventListener("resize", all);
    window.addEventListener("load", () => {
      collect();
      const mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
      if (mj) mj.then(collect);
    });
    if (document.fonts) document.fonts.ready.then(all);
    // a folded box (a closed <details>) is laid out only when opened
    document.querySelectorAll("details").forEach((d) => d.addEventListener("toggle", all));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
