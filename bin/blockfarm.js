#!/usr/bin/env node
// The CLI is TypeScript run through tsx's loader: no build step, so a fresh
// checkout runs exactly the source that the tests exercised.
import { register } from 'tsx/esm/api';

register();
await import('../coordinator/cli/main.ts');
