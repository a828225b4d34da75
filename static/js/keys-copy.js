/*
 * Copy buttons of the API Keys pages (loaded from console/keys_copy_script.html).
 */
// Copy buttons: <button data-copy="text">. The Clipboard API needs a secure
// context (HTTPS or localhost); elsewhere fall back to a selected textarea.
(function () {
  if (window.keysCopyReady) return;
  window.keysCopyReady = true;
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    var copying = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(text)
      : fallbackCopy(text);
    var label = button.querySelector("[data-copy-label]") || button;
    var original = label.getAttribute("data-copy-label") || label.textContent;
    copying.then(function () {
      label.textContent = "Copied";
      button.classList.add("is-copied");
    }, function () {
      label.textContent = "Select and copy";
    });
    setTimeout(function () {
      label.textContent = original;
      button.classList.remove("is-copied");
    }, 2000);
  });
})();
