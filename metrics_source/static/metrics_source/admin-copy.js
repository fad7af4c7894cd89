// Copy the text shown just before the button; selection (user-select: all) is the fallback
// where the Clipboard API is unavailable (plain HTTP on a non-local host).
document.addEventListener("click", function (event) {
  var button = event.target.closest(".ms-copy-button");
  if (!button) return;
  event.preventDefault();
  var shown = button.previousElementSibling;
  var done = function () {
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(shown.textContent).then(done);
  } else {
    window.getSelection().selectAllChildren(shown);
  }
});
