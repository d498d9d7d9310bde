import http from 'node:http';

export interface EarlyAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  /** Body bytes this client had sent when the answer came: it never finishes sending. */
  sentBytes: number;
}

/**
 * POSTs `url` with a body that never ends: `firstBytes` at once, then nothing, the request left
 * open. Resolves with the server's answer, which can only come from a server that did not wait for
 * the body; rejects if none came within `timeoutMs`. The request is destroyed either way.
 */
export function postEndlessBody(url: string, { firstBytes = 1024 * 1024, headers = {}, timeoutMs = 10_000 }: { firstBytes?: number; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<EarlyAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...headers } });
    const timer = setTimeout(() => {
      request.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms while the body was still being sent (${firstBytes} bytes so far)`));
    }, timeoutMs);
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        clearTimeout(timer);
        request.destroy();
        const text = Buffer.concat(chunks).toString();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: kept as text for the assertion to show
        }
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body, sentBytes: firstBytes });
      });
    });
    request.write(Buffer.alloc(firstBytes, ' '));
  });
}
