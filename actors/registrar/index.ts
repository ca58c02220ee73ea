// The registrar actor's public door.
export { registrationMachine, type RegistrationContext, type RegistrationOutput, type ProfilingSummary } from './machine.js';
export { registrationActors, removeModel, defaultRegistrarOptions, type RegistrarOptions, type RegistrarDeps } from './effects.js';
export { startRegistrar, type Registrar, type RegistrarConfig } from './host.js';
