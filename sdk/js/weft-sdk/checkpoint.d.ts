export function get(key: string): Uint8Array | undefined;
export function getString(key: string): string | undefined;
export function put(key: string, value: string | Uint8Array): void;
export function checkpoint(key: string, work: () => string): string;
