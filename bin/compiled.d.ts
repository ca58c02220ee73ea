// Types of bin/compiled.js (plain JavaScript: bin/infaas.js runs it before any TypeScript loader).
export declare const STAMP: string;
export declare function sourceDirs(root: string): string[];
export declare function newestSource(root: string, dirs: readonly string[]): number;
export declare function compiledCli(root: string, outDir?: string): string | undefined;
