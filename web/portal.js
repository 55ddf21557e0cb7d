// The hotspot's sign-in sheet. Opened from a hotspot's redirect (?portal): most
// likely in the phone's sign-in sheet, a small browser that forgets everything when
// it closes. Continue tells the server to let this phone online, so the sheet can
// close without the phone leaving the Wi-Fi; then the real browser keeps the name
// and messages.
import { $ } from './env.js';

export function initPortal() {
  if (!new URLSearchParams(location.search).has('portal')) return;
  const box = $('portal-note');
  const text = $('portal-text');
  const go = $('portal-continue');
  const here = `http://${location.host}/`;
  text.textContent = `The chat of this Wi-Fi. Continue keeps you connected; then open ${here} in your browser, which remembers you.`;
  box.hidden = false;
  box.addEventListener('submit', async (e) => {
    e.preventDefault();
    go.disabled = true;
    try {
      const res = await fetch('/portal', { method: 'POST', headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(String(res.status));
      text.textContent = `You are connected. Close this window (Done), then open ${here} in your browser.`;
      go.hidden = true;
      history.replaceState(null, '', '/');
    } catch {
      text.textContent = 'Could not reach the chat; try Continue again.';
      go.disabled = false;
    }
  });
}
