// The words of the physician's and the ICT desk's screens, added to the catalogue when either chunk loads.
import { extend } from '../lib/i18n';
import ja from '../../../locales/desk.ja.ftl?raw';
import en from '../../../locales/desk.en.ftl?raw';

extend({ ja, en });
