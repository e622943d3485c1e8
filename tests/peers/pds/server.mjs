// A real ATProto PDS (@atproto/pds) and PLC directory (@did-plc/server) for
// Huddle's tests and for running by hand. Both listen on 127.0.0.1 only.
//
//   node server.mjs --data-dir DIR [--blob-dir DIR] [--pds-port N] [--plc-port N]
//                   [--watch-stdin]
//
// Ports also come from HUDDLE_PDS_PORT / HUDDLE_PLC_PORT; 0 (the default)
// picks a free port. The PLC keeps its data in memory, so the PDS must start
// on a fresh data directory each time (its accounts live in that PLC).
//
// When both are ready, one JSON line goes to stdout:
//   {"pds": "http://localhost:P", "plc": "http://localhost:Q", ...}
// Nothing else is written to stdout. Diagnostics go to stderr; set
// LOG_ENABLED=true (and LOG_LEVEL) for the PDS's own pino logs (stdout!).
// SIGTERM / SIGINT (and, with --watch-stdin, stdin closing) stop both cleanly.

import crypto from 'node:crypto'
import events from 'node:events'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'

import { Secp256k1Keypair } from '@atproto/crypto'
import { PDS, envToCfg, envToSecrets, readEnv } from '@atproto/pds'
import { Database as PlcDatabase, PlcServer } from '@did-plc/server'
import { createHttpTerminator } from 'http-terminator'

const HOST = '127.0.0.1'
const STOP_TIMEOUT_MS = 10_000

const log = (msg) => process.stderr.write(`[pds-peer] ${msg}\n`)

const parsePort = (value, name) => {
  const port = Number(value ?? 0)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name}: not a port: ${value}`)
  }
  return port
}

// A free port on 127.0.0.1. The PDS needs its port before it is built (its
// public URL, OAuth issuer and so on contain it), so it cannot listen on 0.
const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })

// What PDS.start() / PlcServer.start() do, but bound to 127.0.0.1.
const listen = async (app, port) => {
  const server = app.listen(port, HOST)
  await Promise.race([
    events.once(server, 'listening'),
    events.once(server, 'error').then(([err]) => {
      throw err
    }),
  ])
  return server
}

const main = async () => {
  const { values: args } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      'blob-dir': { type: 'string' },
      'pds-port': { type: 'string' },
      'plc-port': { type: 'string' },
      'watch-stdin': { type: 'boolean', default: false },
    },
    strict: true,
  })
  const dataDir = args['data-dir'] ?? process.env.PDS_DATA_DIRECTORY
  if (!dataDir) throw new Error('--data-dir is required')
  const blobDir = args['blob-dir'] ?? path.join(dataDir, 'blobs')
  fs.mkdirSync(dataDir, { recursive: true })
  fs.mkdirSync(blobDir, { recursive: true })
  if (fs.readdirSync(dataDir).some((f) => f.endsWith('.sqlite'))) {
    // Its accounts' DIDs would be unknown to this fresh in-memory PLC.
    log(`warning: ${dataDir} is not fresh; the PLC starts empty`)
  }
  const pdsPortWanted = parsePort(
    args['pds-port'] ?? process.env.HUDDLE_PDS_PORT,
    'pds port',
  )
  const plcPortWanted = parsePort(
    args['plc-port'] ?? process.env.HUDDLE_PLC_PORT,
    'plc port',
  )

  const stoppers = [] // run in reverse order
  let stopping = null
  const stop = (why) => {
    if (stopping) return stopping
    log(`stopping (${why})`)
    const timer = setTimeout(() => {
      log('stop timed out; exiting')
      process.exit(1)
    }, STOP_TIMEOUT_MS)
    timer.unref()
    stopping = (async () => {
      let code = 0
      for (const fn of stoppers.reverse()) {
        try {
          await fn()
        } catch (err) {
          code = 1
          log(`error while stopping: ${err?.stack ?? err}`)
        }
      }
      log('stopped')
      process.exit(code)
    })()
    return stopping
  }
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(sig, () => stop(sig))
  }
  if (args['watch-stdin']) {
    // The parent holds our stdin open; if it dies, stdin closes and we go too.
    process.stdin.on('end', () => stop('stdin closed'))
    process.stdin.on('error', () => stop('stdin error'))
    process.stdin.resume()
  }

  // --- PLC directory, in memory
  const plc = PlcServer.create({ db: PlcDatabase.mock(), port: plcPortWanted })
  const plcServer = await listen(plc.app, plcPortWanted)
  const plcTerminator = createHttpTerminator({ server: plcServer })
  stoppers.push(async () => {
    await plcTerminator.terminate()
    await plc.ctx.db.close()
  })
  const plcPort = plcServer.address().port
  // The PDS's identity resolver refuses IP literals: use localhost.
  const plcUrl = `http://localhost:${plcPort}`

  // --- PDS
  const pdsPort = pdsPortWanted || (await freePort())
  const rotationKey = await Secp256k1Keypair.create({ exportable: true })
  const adminPassword = crypto.randomBytes(16).toString('hex')
  Object.assign(process.env, {
    PDS_HOSTNAME: 'localhost',
    PDS_PORT: String(pdsPort),
    PDS_DID_PLC_URL: plcUrl,
    PDS_DEV_MODE: 'true',
    PDS_INVITE_REQUIRED: 'false',
    PDS_DATA_DIRECTORY: dataDir,
    PDS_BLOBSTORE_DISK_LOCATION: blobDir,
    PDS_JWT_SECRET: crypto.randomBytes(32).toString('hex'),
    PDS_ADMIN_PASSWORD: adminPassword,
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: Buffer.from(
      await rotationKey.export(),
    ).toString('hex'),
  })
  const env = readEnv()
  const pds = await PDS.create(envToCfg(env), envToSecrets(env))
  stoppers.push(() => pds.ctx.destroy())
  await pds.ctx.sequencer.start()
  const pdsServer = await listen(pds.app, pdsPort)
  pdsServer.keepAliveTimeout = 90_000
  const pdsTerminator = createHttpTerminator({ server: pdsServer })
  stoppers.push(() => pdsTerminator.terminate())

  if (stopping) return
  const ready = {
    pds: `http://localhost:${pdsPort}`,
    plc: plcUrl,
    pds_port: pdsPort,
    plc_port: plcPort,
    firehose: `ws://127.0.0.1:${pdsPort}/xrpc`,
    service_did: pds.ctx.cfg.service.did,
    handle_domains: pds.ctx.cfg.identity.serviceHandleDomains,
    admin_password: adminPassword,
    data_dir: dataDir,
    blob_dir: blobDir,
    pid: process.pid,
    node: process.version,
    pds_version: pds.ctx.cfg.service.version,
    startup_ms: Math.round(process.uptime() * 1000),
    startup_cpu_ms: Math.round(
      (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    ),
  }
  process.stdout.write(JSON.stringify(ready) + '\n')
  log(`ready: PDS ${ready.pds}, PLC ${ready.plc}`)
}

main().catch((err) => {
  log(`failed: ${err?.stack ?? err}`)
  process.exit(1)
})
