// The attending physician's screens, loaded when first opened: a nurse's phone never downloads them.
import './desk-words';
export { default as Team } from './Team.svelte';
export { default as NewGroup } from './NewGroup.svelte';
export { default as AccessReport } from './AccessReport.svelte';
