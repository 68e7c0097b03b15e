// The console's only script (CSP: script-src 'self'): ask before a form marked data-confirm is sent.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
