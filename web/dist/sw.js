// renkei's service worker: keeps the application shell (the page, its scripts, styles and icons) so the
// app opens without signal. It never stores or answers anything under /api/: clinical content and
// tokens stay off the device's caches. Hashed files under /assets/ never change; the page is fetched
// fresh whenever the network answers.
const CACHE = 'renkei-shell-v1';

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(['/', '/manifest.webmanifest', '/icon.svg'])).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k)))).then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/api/')) return;
  if (url.pathname.startsWith('/assets/')) {
    event.respondWith(
      caches.match(event.request).then(
        (hit) => hit || fetch(event.request).then((r) => {
          if (r.ok) { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(event.request, copy)); }
          return r;
        }),
      ),
    );
    return;
  }
  // The page and the rest of the shell: the network first, the kept copy without signal.
  event.respondWith(
    fetch(event.request)
      .then((r) => {
        if (r.ok) { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(url.pathname === '/index.html' ? '/' : event.request, copy)); }
        return r;
      })
      .catch(() => caches.match(event.request).then((hit) => hit || caches.match('/'))),
  );
});

// Web Push: the server sends only how many new posts wait (never a name, a group or a word of a post);
// the notification says that much, and a tap opens renkei, which loads the rest after sign-in.
self.addEventListener('push', (event) => {
  let payload = {};
  try { payload = event.data ? event.data.json() : {}; } catch { payload = {}; }
  const ja = !self.navigator.language || self.navigator.language.startsWith('ja');
  const body = (ja ? payload.body_ja : payload.body_en) || (ja ? 'renkei に新しい投稿があります' : 'New posts in renkei');
  event.waitUntil(self.registration.showNotification(payload.title || 'renkei', { body, tag: 'renkei-new-posts', renotify: true, icon: '/icon-192.png' }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => new URL(w.url).origin === self.location.origin);
      return open ? open.focus() : self.clients.openWindow('/');
    }),
  );
});
