// Proof-of-work challenge: find a nonce such that SHA-256(seed + nonce) starts
// with `difficulty` zero bits, spread over one Web Worker per core, then
// submit the form. Served from the page's own origin (strict CSP, no inline
// script); the page's <noscript> path covers browsers without JavaScript.
(function () {
  'use strict';

  var form = document.getElementById('sd-form');
  if (!form) {
    return;
  }
  var data = form.dataset;
  var bar = document.getElementById('sd-progress');
  var status = document.getElementById('sd-status');
  var fallback = document.getElementById('sd-fallback');
  var seed = data.seed || '';
  var difficulty = parseInt(form.elements.namedItem('difficulty').value, 10);
  var expected = Math.pow(2, difficulty);
  var cores = Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 16));
  var workers = [];
  var tries = 0;
  var finished = false;
  var lastAnnounced = -1;

  function stopAll() {
    finished = true;
    for (var i = 0; i < workers.length; i++) {
      workers[i].terminate();
    }
  }

  function fail() {
    if (finished) {
      return;
    }
    stopAll();
    status.textContent = data.msgError;
    if (fallback) {
      fallback.hidden = false;
    }
  }

  // Progress is the chance that the work done so far would have found a
  // solution: honest, and it never stalls at 100 % while work goes on.
  function progress() {
    var percent = Math.min(99, Math.floor(100 * (1 - Math.exp(-tries / expected))));
    bar.value = percent;
    bar.textContent = percent + '%';
    // Announce in steps of 25 so that screen readers are not flooded.
    var step = Math.floor(percent / 25);
    if (step !== lastAnnounced) {
      lastAnnounced = step;
      status.textContent = data.msgProgress.replace('{percent}', String(percent));
    }
  }

  function onMessage(event) {
    if (finished) {
      return;
    }
    var m = event.data;
    if (typeof m.tries === 'number') {
      tries += m.tries;
      progress();
    }
    if (typeof m.nonce === 'number') {
      stopAll();
      form.elements.namedItem('nonce').value = String(m.nonce);
      bar.value = 100;
      bar.textContent = '100%';
      status.textContent = data.msgDone;
      form.submit();
    }
  }

  if (typeof Worker !== 'function' || !(difficulty > 0) || seed.length === 0 || seed.length > 32) {
    fail();
    return;
  }
  try {
    for (var i = 0; i < cores; i++) {
      var w = new Worker(data.worker);
      w.onmessage = onMessage;
      w.onerror = fail;
      w.postMessage({ prefix: seed, start: i, step: cores, difficulty: difficulty });
      workers.push(w);
    }
  } catch (e) {
    fail();
    return;
  }
  status.textContent = data.msgWorking;
})();
