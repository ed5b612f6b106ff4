// The one entry to @peculiar/x509: its dependency tsyringe needs the Reflect metadata API loaded
// before it is imported.
import 'reflect-metadata';

export * from '@peculiar/x509';
