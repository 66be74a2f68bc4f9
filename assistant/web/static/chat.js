() => {
  // The page's behaviour around Gradio's components. Strings come from the server
  // (i18n.client_texts, set by the load event as window.__assistantTexts), so that this file
  // holds no interface text of its own.
  const texts = () => {
    try { return JSON.parse(window.__assistantTexts || '{}'); } catch (e) { return {}; }
  };
  const root = () => document.querySelector('gradio-app') || document;
  // Embedded as a <gradio-app src=…> web component the page is someone else's: its title and
  // language stay theirs.
  const ownPage = () => !document.querySelector('gradio-app[src]');
  const $ = (selector) => root().querySelector(selector);
  const $$ = (selector) => Array.from(root().querySelectorAll(selector));

  // Citation links in answers point at "#src-<turn>-<n>": open (and scroll to) the passage in
  // the sources panel instead of navigating.
  const open = (id) => {
    const el = root().querySelector('#' + CSS.escape(id));
    if (!el) return;
    for (let p = el; p; p = p.parentElement) { if (p.tagName === 'DETAILS') p.open = true; }
    $$('details.source.highlight').forEach((e) => e.classList.remove('highlight'));
    el.classList.add('highlight');
    const still = matchMedia('(prefers-reduced-motion: reduce)').matches;
    el.scrollIntoView({ behavior: still ? 'auto' : 'smooth', block: 'nearest' });
    const summary = el.querySelector('summary');
    if (summary) summary.focus({ preventScroll: true });
  };
  // On a phone the sources panel is far below the chat: the passage opens in a drawer over
  // the chat instead (also in a narrow frame whose panel is out of sight), and Close, Escape, a tap beside it or the phone's Back button lead back
  // to the chat as it was (nothing below it scrolls; focus returns to the citation).
  const phone = () => window.innerWidth <= 640;
  const chatScroller = (el) => {
    for (let p = el && el.parentElement; p; p = p.parentElement) {
      if (['auto', 'scroll'].includes(getComputedStyle(p).overflowY)) return p;
    }
    return null;
  };
  let drawer = null;
  const closeDrawer = (fromHistory) => {
    if (!drawer) return;
    const { element, link, href, scrollY, list, listTop } = drawer;
    drawer = null;
    element.remove();
    window.scrollTo(0, scrollY);
    if (list && list.isConnected) list.scrollTop = listTop;
    if (!fromHistory && history.state && history.state.assistantDrawer) history.back();
    const target = link.isConnected ? link : document.querySelector(`#chatbot a[href="${href}"]`);
    if (target) target.focus({ preventScroll: true });
  };
  const openDrawer = (link, id) => {
    const passage = root().querySelector('#' + CSS.escape(id));
    if (!passage) return;
    closeDrawer(false);
    const s = texts();
    const element = document.createElement('div');
    element.id = 'source-drawer';
    const sheet = document.createElement('div');
    sheet.className = 'sheet';
    sheet.setAttribute('role', 'dialog');
    sheet.setAttribute('aria-modal', 'true');
    sheet.setAttribute('aria-labelledby', 'source-drawer-title');
    const bar = document.createElement('div');
    bar.className = 'bar';
    const title = document.createElement('h2');
    title.id = 'source-drawer-title';
    title.textContent = passage.querySelector('summary').textContent.replace(/\s+/g, ' ').trim();
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'close';
    close.textContent = `← ${s.back_to_chat || 'Back'}`;
    close.addEventListener('click', () => closeDrawer(false));
    bar.append(close);
    const body = document.createElement('div');
    body.className = 'body';
    // The panel's own (escaped) elements, copied: the quote, the file and the original.
    Array.from(passage.children).filter((c) => c.tagName !== 'SUMMARY')
      .forEach((c) => body.appendChild(c.cloneNode(true)));
    sheet.append(bar, title, body);
    element.appendChild(sheet);
    element.addEventListener('click', (event) => { if (event.target === element) closeDrawer(false); });
    element.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') { event.preventDefault(); closeDrawer(false); return; }
      if (event.key !== 'Tab') return;  // the keyboard stays in the drawer while it is open
      const stops = Array.from(sheet.querySelectorAll('a[href], button'));
      const first = stops[0];
      const last = stops[stops.length - 1];
      if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
      else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
    });
    const app = document.querySelector('gradio-app[src]');
    if (app) {
      body.querySelectorAll('a.open-original').forEach((a) => {
        a.href = new URL(a.getAttribute('href'), app.getAttribute('src')).href;
      });
    }
    document.body.appendChild(element);
    // The chat's own scroll too: Gradio's chatbot may scroll itself meanwhile.
    const list = chatScroller(link);
    drawer = {
      element, link, href: link.getAttribute('href'), scrollY: window.scrollY,
      list, listTop: list ? list.scrollTop : 0,
    };
    history.pushState({ ...(history.state || {}), assistantDrawer: true }, '');
    close.focus({ preventScroll: true });
  };
  window.addEventListener('popstate', () => closeDrawer(true));
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a[href^="#src-"]');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const id = link.getAttribute('href').slice(1);
    // Narrow, and the sources panel out of sight (below the chat): the drawer. A narrow frame
    // tall enough to show the panel opens the passage there, as a desktop does.
    const panel = root().querySelector('#sources');
    const top = panel ? panel.getBoundingClientRect().top : Infinity;
    if (phone() && top > window.innerHeight - 120) {
      openDrawer(link, id);
      return;
    }
    open(id);
  }, true);

  const theme = new URLSearchParams(window.location.search).get('theme');
  if (theme === 'dark') document.body.classList.add('dark');
  if (theme === 'light') document.body.classList.remove('dark');

  // Gradio takes its locale from the browser; only its own settings panel changes it, through
  // changeLocale of its core module. svelte-i18n sets <html lang> once the locale's strings
  // are loaded: that is when labels rendered from then on are in the interface language.
  let localeSet = false;
  const gradioLocale = async (lang) => {
    const html = document.documentElement;
    const core = performance.getEntriesByType('resource')
      .map((e) => e.name).find((name) => /\/assets\/core-[\w-]+\.js$/.test(name));
    try {
      const module = core && html.getAttribute('lang') !== lang ? await import(core) : null;
      if (module && module.changeLocale) {
        await new Promise((resolve) => {
          const done = () => { watch.disconnect(); clearTimeout(timer); resolve(); };
          const watch = new MutationObserver(() => {
            if (html.getAttribute('lang') === lang) done();
          });
          watch.observe(html, { attributes: true, attributeFilter: ['lang'] });
          const timer = setTimeout(done, 15000);  // never keep the chat from loading
          module.changeLocale(lang);
        });
      }
    } catch (e) { /* Gradio's labels stay in the browser's language */ }
    localeSet = true;
  };

  // The interface language: <html lang>, the page title and Gradio's own labels.
  // Questions wait for it: Gradio words a chat's controls (Clear, Like) once, when the first
  // message renders, so a question sent before the switch would leave them in the browser's
  // language for the whole conversation. A failed load event must not lock the chat forever.
  let ready = false;
  setTimeout(() => { ready = true; }, 20000);
  window.assistantApply = async () => {
    const s = texts();
    if (!s.lang) { ready = true; return; }
    if (ownPage()) document.title = s.title;
    await gradioLocale(s.lang);
    if (ownPage()) document.documentElement.lang = s.lang;
    ready = true;
    fixMessages();
  };
  if (window.__assistantTexts) window.assistantApply();

  // Chat messages: an accessible name of plain text (the rendered words, not the Markdown
  // behind them).
  const bots = () => $$('#chatbot [data-testid="bot"]');
  const fixMessages = () => {
    const s = texts();
    $$('#chatbot [data-testid="bot"], #chatbot [data-testid="user"]').forEach((el) => {
      const role = el.dataset.testid === 'bot' ? s.role_answer : s.role_question;
      const name = `${role || el.dataset.testid}: ${el.innerText.trim()}`;
      if (el.getAttribute('aria-label') !== name) el.setAttribute('aria-label', name);
    });
    // Error notices: Gradio 6 heads them "Error" and names their button "Close" whatever the
    // locale (its frontend reads the title of gr.Error from a field the server never sends).
    $$('[data-testid="toast-close"]').forEach((button) => {
      if (s.close && button.getAttribute('aria-label') !== s.close) {
        button.setAttribute('aria-label', s.close);
      }
    });
    $$('.toast-title.error').forEach((heading) => {
      const words = heading.firstChild;  // a text node of Svelte's: changed, not replaced
      const english = words && words.nodeType === Node.TEXT_NODE && words.nodeValue.trim() === 'Error';
      if (s.error && english) words.nodeValue = `${s.error} `;
    });
    // In a <gradio-app src=…> on another site, "open the original" links lead to this server.
    const app = document.querySelector('gradio-app[src]');
    if (app) {
      $$('a.open-original[href^="/"]').forEach((a) => {
        a.href = new URL(a.getAttribute('href'), app.getAttribute('src')).href;
      });
    }
    // Gradio's drop zone names itself "Click to upload…" without the visible label.
    $$('#upload .upload-container[aria-label]').forEach((el) => el.removeAttribute('aria-label'));
  };
  new MutationObserver(() => {
    fixMessages();
    // The box hidden by the server (a new or another conversation): the chat's room goes too.
    const box = $('#feedback');
    if (list && (!box || box.offsetParent === null)) closed();
  }).observe(document.body, {
    subtree: true, childList: true, characterData: true,
    attributes: true, attributeFilter: ['aria-label'],
  });

  // Copy: the answer as plain text and a numbered list of its sources.
  const plainAnswer = (message) => {
    const turn = bots().indexOf(message) + 1;
    const lines = [message.innerText.trim()];
    const sources = $$(`#sources section.turn[data-turn="${turn}"] details.source`);
    if (sources.length) {
      lines.push('', `${texts().sources || 'Sources'}:`);
      for (const source of sources) {
        // textContent: older answers sit in closed <details>, where innerText is empty.
        const head = source.querySelector('summary').textContent.replace(/\s+/g, ' ').trim();
        const quotes = Array.from(source.querySelectorAll('blockquote'))
          .map((q) => `“${q.textContent.trim()}”`).join(' ');
        lines.push(`${head}: ${quotes}`);
      }
    }
    return lines.join('\n');
  };
  const messageOf = (button) => {
    // The message a row of buttons belongs to: the last one before it in the page.
    const before = bots().filter((m) => m.compareDocumentPosition(button) & Node.DOCUMENT_POSITION_FOLLOWING);
    return before[before.length - 1];
  };
  const writeClipboard = async (text) => {
    window.__assistantCopied = text;
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      const area = document.createElement('textarea');
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
  };
  document.addEventListener('click', (event) => {
    const button = event.target.closest && event.target.closest('#chatbot .message-buttons-left button');
    if (!button) return;
    const all = Array.from(button.closest('.message-buttons-left').querySelectorAll('button'));
    const index = all.indexOf(button);
    const message = messageOf(button);
    if (!message) return;
    if (index === 0) {  // Gradio's copy button comes first: copy, retry, dislike, like
      event.preventDefault();
      event.stopPropagation();
      writeClipboard(plainAnswer(message));
      button.setAttribute('title', texts().copied || 'Copied');
      setTimeout(() => button.setAttribute('title', texts().copy || 'Copy'), 2000);
      return;
    }
    // Like/dislike (the last two): the comment box opens right below the rated answer.
    if (index >= all.length - 2) placeFeedback(message, button);
  }, true);

  // The comment box opens right below the rated answer, laid over the chat's own area and
  // never beyond it, so the question box stays uncovered. The chat gets room at its end (a
  // padding as tall as the box) and is scrolled so that the answer's buttons sit just above
  // the box. Where the chat is too short for that (a phone) the box stays in the page's flow
  // below the chat, the rated answer scrolled to the chat's lower edge.
  let rated = null;
  let ratedButton = null;
  let list = null;
  const scroller = chatScroller;
  // The row of buttons under the rated answer: the first one after it in the page.
  const ratedButtons = () => $$('#chatbot .message-buttons-left')
    .find((b) => rated.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING) || rated;
  const anchorFeedback = () => {
    const box = $('#feedback');
    if (!box || !rated || !rated.isConnected || !list || box.offsetParent === null) return;
    const buttons = ratedButtons().getBoundingClientRect();
    const view = list.getBoundingClientRect();
    const height = box.offsetHeight;
    const over = height + 16 < view.height * 0.8;
    box.classList.toggle('anchored', over);
    const room = over ? height + 12 : 8;
    // Out of place (above the chat's top, or too low for the box): the answer is scrolled.
    if (buttons.bottom < view.top + 24 || buttons.bottom > view.bottom - room) {
      list.scrollTop += buttons.bottom - (view.bottom - room);
    }
    if (!over) { box.style.top = ''; return; }
    const column = box.parentElement;
    if (getComputedStyle(column).position === 'static') column.style.position = 'relative';
    const base = column.getBoundingClientRect().top;
    const top = ratedButtons().getBoundingClientRect().bottom + 4;
    // Kept inside the chat's area whatever the reader scrolls to.
    const clamped = Math.min(Math.max(top, view.top), view.bottom - height);
    box.style.top = `${clamped - base}px`;
  };
  // Gradio's chatbot scrolls itself back to its end a moment after a rating (it was at the
  // end when its value changed): for two seconds the rated answer is brought back, until the
  // reader scrolls on their own. Later scrolling only moves the box with the answer.
  let holding = 0;
  const onScroll = () => {
    if (performance.now() < holding) { anchorFeedback(); return; }
    const box = $('#feedback');
    if (box && box.classList.contains('anchored') && rated && list) {
      const view = list.getBoundingClientRect();
      const top = ratedButtons().getBoundingClientRect().bottom + 4;
      const base = box.parentElement.getBoundingClientRect().top;
      box.style.top = `${Math.min(Math.max(top, view.top), view.bottom - box.offsetHeight) - base}px`;
    }
  };
  const release = () => { holding = 0; };
  const placeFeedback = (message, button) => {
    rated = message;
    ratedButton = button;
    const started = Date.now();
    const place = () => {
      const box = $('#feedback');
      if (!box || box.offsetParent === null || !scroller(message)) {
        if (Date.now() - started < 10000) requestAnimationFrame(place);
        return;
      }
      if (list) list.style.paddingBottom = '';
      list = scroller(message);
      // Room at the chat's end only where the box goes over the chat (not on a phone).
      const fits = box.offsetHeight + 16 < list.getBoundingClientRect().height * 0.8;
      list.style.paddingBottom = fits ? `${box.offsetHeight + 16}px` : '';
      holding = performance.now() + 2000;
      list.addEventListener('scroll', onScroll);
      ['wheel', 'touchstart', 'keydown', 'mousedown'].forEach((e) => list.addEventListener(e, release));
      anchorFeedback();
      box.scrollIntoView({ block: 'nearest' });
      const area = box.querySelector('textarea');
      if (area) area.focus({ preventScroll: true });
    };
    requestAnimationFrame(place);
  };
  window.addEventListener('resize', anchorFeedback);
  // Closed (Cancel, Escape): the chat loses its extra room and the keyboard goes back to the
  // thumb that opened the box.
  const closed = () => {
    if (list) {
      list.style.paddingBottom = '';
      list.removeEventListener('scroll', onScroll);
    }
    const target = ratedButton && ratedButton.isConnected ? ratedButton : null;
    rated = null;
    ratedButton = null;
    list = null;
    return target;
  };
  window.assistantFeedbackClosed = () => {
    const target = closed();
    if (target) target.focus({ preventScroll: true });
  };
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    const inside = event.target.closest && event.target.closest('#feedback, #chatbot');
    const cancel = $('#feedback-cancel');
    if (!inside || !cancel || cancel.offsetParent === null) return;
    event.preventDefault();
    event.stopPropagation();
    cancel.click();
  }, true);

  // Send: not for an empty question nor before the interface language is set; a counter near
  // the length limit.
  const syncSend = () => {
    const s = texts();
    // Gradio sets the title from the Blocks after load; the interface language wins.
    if (s.title && ownPage() && document.title !== s.title) document.title = s.title;
    if (s.lang && localeSet && ownPage() && document.documentElement.lang !== s.lang) {
      document.documentElement.lang = s.lang;
    }
    const area = $('#question textarea');
    const send = $('#send');
    if (!area || !send) return;
    const blocked = !area.value.trim() || !ready;
    if (send.disabled !== blocked) send.disabled = blocked;
    send.setAttribute('aria-disabled', String(blocked));
    const max = Number(area.getAttribute('maxlength')) || 0;
    let counter = $('#question-counter');
    if (!counter) {
      counter = document.createElement('div');
      counter.id = 'question-counter';
      counter.setAttribute('aria-live', 'polite');
      area.insertAdjacentElement('afterend', counter);
    }
    const left = max - area.value.length;
    const text = max && left <= max * 0.2 ? (s.chars_left || '{n}').replace('{n}', left) : '';
    if (counter.textContent !== text) counter.textContent = text;
  };
  setInterval(syncSend, 150);
  document.addEventListener('input', syncSend, true);
  document.addEventListener('keydown', (event) => {
    const area = event.target.closest && event.target.closest('#question textarea');
    if (area && event.key === 'Enter' && !event.shiftKey && (!area.value.trim() || !ready)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // A lost connection is said in the interface language; the conversation stays on the page
  // and on the server.
  const offline = () => {
    let note = document.getElementById('offline-notice');
    if (!note) {
      note = document.createElement('div');
      note.id = 'offline-notice';
      note.setAttribute('role', 'alert');
      document.body.appendChild(note);
    }
    note.textContent = texts().offline || 'Offline';
  };
  window.addEventListener('offline', offline);
  window.addEventListener('online', () => {
    const note = document.getElementById('offline-notice');
    if (note) note.remove();
  });
}
