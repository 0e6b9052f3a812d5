import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { locale } from './lib/i18n';

document.documentElement.lang = locale;
mount(App, { target: document.getElementById('app')! });

// The service worker keeps the shell (this page, its scripts and styles) for opening without signal.
// It never stores an API answer: clinical content stays off the device's HTTP cache.
if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  navigator.serviceWorker.register('/sw.js').catch(() => undefined);
}
