// The console works without this script; it only follows a running verification,
// which the log page shows, until it ends, then shows the page again with its result.

interface VerifyStatus {
  running: boolean;
  leaves: number;
  total: number;
}

const box = document.querySelector<HTMLElement>('[data-progress]');
const bar = box?.querySelector('progress');
const leaves = box?.querySelector('[data-leaves]');

async function follow(url: string): Promise<void> {
  const res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!res.ok) return; // the page says what it knew; a reload shows the rest
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
  setTimeout(() => void follow(url), 1000);
}

if (box && bar) setTimeout(() => void follow(box.dataset.progress as string), 1000);
