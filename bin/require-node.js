// Preloaded first by `npm start` (`node --import ./bin/require-node.js --import tsx ...`) and
// imported first by bin/eventstore.js: on a Node.js eventstore does not support, one line and exit 1
// before anything that needs a newer Node.js is loaded (bin/node-version.js).
import { exitIfTooOld } from './node-version.js';

exitIfTooOld();
