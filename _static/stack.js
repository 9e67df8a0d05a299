// On a phone, a table of sentences (the deviations from a paper, the claims and their verdicts)
// scrolled sideways shows a word or two per line and hides its last columns. Such a table is
// laid out as one block per row instead, each cell under its column's name (book.css).
(function () {
  const NARROW = 600;       // px: book.css's phone width
  const MIN_COLUMNS = 4;    // fewer columns fit a phone as a table
  const PROSE = 14;         // mean characters per cell above which a table holds sentences
  function prose(table) {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    const cells = [...table.querySelectorAll("tbody td")];
    if (heads.length < MIN_COLUMNS || !cells.length) return null;
    const mean = cells.reduce((n, td) => n + td.textContent.trim().length, 0) / cells.length;
    return mean > PROSE ? heads : null;
  }
  function stackable() {   // the tables of sentences, each cell labelled with its column's name
    const found = [];
    document.querySelectorAll(".cell_output table, article table.table").forEach((table) => {
      const heads = prose(table);
      if (!heads) return;
      table.querySelectorAll("tbody tr").forEach((tr) =>
        [...tr.children].forEach((td, i) => td.setAttribute("data-label", heads[i] || "")));
      found.push(table);
    });
    return found;
  }
  let tables = null;   // found once, on the first layout; a resize only toggles them
  function layout() {
    tables = tables || stackable();
    const narrow = window.innerWidth < NARROW;
    tables.forEach((table) => table.classList.toggle("bn-stacked", narrow));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", layout);
  else layout();
  window.addEventListener("resize", layout);
})();
