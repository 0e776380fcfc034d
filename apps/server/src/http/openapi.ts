import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { HttpMethod } from './routes.ts';

/** The parts of openapi.yaml the server reads itself (the validator reads the rest). */
export interface OpenApiOperation {
  operationId: string;
  summary?: string;
  description?: string;
  tags?: string[];
  deprecated?: boolean;
  security?: Record<string, string[]>[];
  parameters?: OpenApiParameter[];
  requestBody?: { content?: Record<string, { schema?: { $ref?: string } }> };
  responses?: Record<string, { $ref?: string; description?: string }>;
  'x-min-role'?: 'read-only' | 'read-write' | 'admin';
}

export interface OpenApiParameter {
  $ref?: string;
  name?: string;
  in?: string;
  required?: boolean;
  description?: string;
  schema?: { type?: string };
}

export interface OpenApiDocument {
  /** The file's text, served as-is from GET /openapi.yaml. */
  text: string;
  info: { title: string; version: string; description?: string };
  paths: Record<string, Partial<Record<HttpMethod, OpenApiOperation>>>;
  [key: string]: unknown;
}

export const HTTP_METHODS: readonly HttpMethod[] = ['get', 'head', 'post', 'put', 'patch', 'delete'];

export function loadOpenApiDocument(file: string): OpenApiDocument {
  const text = readFileSync(file, 'utf8');
  const parsed = parse(text) as Omit<OpenApiDocument, 'text'>;
  return { ...parsed, text } as OpenApiDocument;
}

/** Every (method, path, operation) in the document, in file order. */
export function listOperations(
  doc: OpenApiDocument,
): { method: HttpMethod; path: string; operation: OpenApiOperation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    HTTP_METHODS.filter((m) => item[m]).map((method) => ({ method, path, operation: item[method]! })),
  );
}
