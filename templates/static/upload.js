// Upload with a progress bar. Without JavaScript the form posts normally.
(function () {
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    bar.hidden = false;
    bar.value = 0;
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round((e.loaded / e.total) * 100);
        status.textContent = bar.value + "%";
      }
    });
    xhr.addEventListener("load", function () {
      if (xhr.status < 300) {
        // Stored: show the list (the server redirected to it).
        window.location.assign(xhr.responseURL || window.location.href);
      } else {
        // Refused: the server answered with the form and its error.
        document.open();
        document.write(xhr.responseText);
        document.close();
      }
    });
    xhr.addEventListener("error", function () {
      status.textContent = form.getAttribute("data-network-error");
    });
    xhr.send(new FormData(form));
  });
})();
