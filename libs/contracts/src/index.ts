/** Wire contract v1: names, topics, event schemas and their runtime validation; IP addresses in one spelling. */
export * from './names.js';
export * from './topics.js';
export * from './events.js';
export * from './validate.js';
export * from './policy-settings.js';
export * from './ip-address.js';
