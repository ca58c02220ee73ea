// The CLI compiled to JavaScript (bin/build.js, as `npm install` runs it): it runs without tsx, finds
// the project's files from its output directory, and bin/infaas.js uses it only while no source is newer.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { compiledCli } from '../bin/compiled.js';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;

t.test('bin/infaas.js takes the compiled CLI only while no source is newer than its build', async (t) => {
  const root = t.testdir({
    'tsconfig.build.json': JSON.stringify({ include: ['src'] }),
    src: { 'a.ts': '', deep: { 'b.ts': '' } },
    dist: { cluster: { 'cli.js': '' } },
  });
  const at = (path: string, s: number) => utimesSync(join(root, path), s, s);
  const stamp = (startedS: number) => writeFileSync(join(root, 'dist', '.build.json'), JSON.stringify({ startedMs: startedS * 1000 }));
  for (const p of ['src', 'src/a.ts', 'src/deep', 'src/deep/b.ts']) at(p, 1000);
  t.equal(compiledCli(root), undefined, 'no stamp: never built to the end');
  stamp(2000);
  t.equal(compiledCli(root), join(root, 'dist', 'cluster', 'cli.js'), 'every source older than the build');
  at('src/deep/b.ts', 3000);
  t.equal(compiledCli(root), undefined, 'a source edited since');
  stamp(4000);
  t.ok(compiledCli(root), 'rebuilt');
  writeFileSync(join(root, 'src', 'deep', 'c.ts'), '');
  at('src/deep/c.ts', 1000);
  at('src/deep', 5000);
  t.equal(compiledCli(root), undefined, 'a source added (or removed) since: its directory is newer');
});

t.test('the compiled CLI answers --help and finds the zoo without tsx', async (t) => {
  // Inside the project, as dist/ is, so that packages and the project root resolve the same way.
  const out = t.testdir();
  await run(process.execPath, [join(ROOT, 'bin', 'build.js'), '--out-dir', out], { cwd: ROOT, maxBuffer: 1 << 24 });
  t.ok(Number.isFinite(JSON.parse(readFileSync(join(out, '.build.json'), 'utf8')).startedMs), 'the build is stamped');
  t.notOk(existsSync(join(out, 'test')), 'tests are not compiled');
  // Plain node, no --import=tsx (a .ts import anywhere on the way would fail), from another directory.
  const cli = (args: string[]) => run(process.execPath, ['--input-type=module', '-e',
    `const { main } = await import(${JSON.stringify(pathToFileURL(join(out, 'cluster', 'cli.js')).href)}); await main(['node', 'infaas', ...process.argv.slice(1)]);`,
    '--', ...args], { cwd: tmpdir() });
  const help = await cli(['--help']);
  t.match(help.stdout, /Usage: infaas \[options\] \[command\]/);
  t.match(help.stdout, /\bup\b[\s\S]*\bmodels\b[\s\S]*\bbench\b[\s\S]*\bvalidation-set\b/, 'every command listed');
  const bench = await cli(['bench', '--help']);
  t.match(bench.stdout, /measured seconds \(default 10;/, "bench's defaults in its help");
  const zoo = await run(process.execPath, ['--input-type=module', '-e',
    `const { zooModels } = await import(${JSON.stringify(pathToFileURL(join(out, 'zoo', 'index.js')).href)}); console.log(JSON.stringify(zooModels().map((m) => m.path)));`]);
  const paths = JSON.parse(zoo.stdout) as string[];
  t.ok(paths.length > 0 && paths.every((p) => p.startsWith(join(ROOT, 'zoo', 'models')) && existsSync(p)), 'the committed models, from the project root');
});

