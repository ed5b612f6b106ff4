/**
 * The protocol without its schemas: the error catalogue, identity constants and durations, with
 * no schema library behind them. Light clients import this (`@fleetkey/protocol/base`): the CLI
 * answers a command in a fraction of the time the full TypeBox surface takes to load.
 */
export * from './errors/index.js';
export * from './identity.js';
export * from './duration.js';
