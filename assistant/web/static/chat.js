() => {
  const open = (id) => {
    const el = document.getElementById(id);
    if (!el) return;
    for (let p = el; p; p = p.parentElement) { if (p.tagName === 'DETAILS') p.open = true; }
    document.querySelectorAll('details.source.highlight')
      .forEach((e) => e.classList.remove('highlight'));
    el.classList.add('highlight');
    el.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  };
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a[href^="#src-"]');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    open(link.getAttribute('href').slice(1));
  }, true);
  const theme = new URLSearchParams(window.location.search).get('theme');
  if (theme === 'dark') document.body.classList.add('dark');
  if (theme === 'light') document.body.classList.remove('dark');
}
