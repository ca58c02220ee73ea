// The operator's console's public door: the infaas-admin service and its minute of statistics.
export { startAdmin, settingNames, ADMIN_VERSION, type Admin, type AdminConfig } from './host.js';
export { MinuteWindow, weightedPercentile } from './window.js';
