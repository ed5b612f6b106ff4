export { attestOnce, startAttester, DEFAULT_EVENT_LOG_PATH, type AttestOptions, type AttestationOutcome, type Attester } from './attester.js';
export { quoteWithAk, type TpmQuoteResult } from './tpm-quote.js';
