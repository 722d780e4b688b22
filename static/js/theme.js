// Loaded in <head> as a classic (blocking) script, before first paint, so a light-theme user
// never sees a dark flash; a file rather than inline because the CSP allows no inline script.
document.documentElement.dataset.theme =
  localStorage.getItem("stashhog-theme") ||
  (matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark");
