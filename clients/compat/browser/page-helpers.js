// Loaded first by every test page (served by backend.js). It is the page's only test hook:
// `report(kind, data)` hands an observation to the Node test, which awaits it with a bounded wait
// (`TestPage.next` in browser.js). `heraldReport` is the function the test exposed to the page.
// Everything else a page does is the stock SDKs' public API, called from the tests.
(function () {
  'use strict';
  window.report = function report(kind, data) {
    var copy = data === undefined ? null : JSON.parse(JSON.stringify(data));
    window.heraldReport(kind, copy);
  };
})();
