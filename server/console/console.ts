// The console works without this script; it only follows a running verification,
// which the log page shows, until it ends, then shows the page again with its result.
// Each look is a call in the audit log: it looks every second at first, then less
// often, at most every ten seconds.

interface VerifyStatus {
  running: boolean;
  leaves: number;
  total: number;
}

const box = document.querySelector<HTMLElement>('[data-progress]');
const bar = box?.querySelector('progress');
const leaves = box?.querySelector('[data-leaves]');

async function follow(url: string, wait: number): Promise<void> {
  const res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  // Not the status (a session that ended gets the sign-in page): the page again says why.
  if (!res.ok || !(res.headers.get('Content-Type') || '').startsWith('application/json')) {
    location.reload();
    return;
  }
  const s = (await res.json()) as VerifyStatus;
  if (!s.running) {
    location.reload();
    return;
  }
  if (bar) {
    bar.max = s.total;
    bar.value = s.leaves;
    bar.textContent = `${s.leaves} of ${s.total}`;
  }
  if (leaves) leaves.textContent = String(s.leaves);
  const next = Math.min(wait * 1.5, 10000);
  setTimeout(() => void follow(url, next), next);
}

if (box && bar) setTimeout(() => void follow(box.dataset.progress as string, 1000), 1000);
