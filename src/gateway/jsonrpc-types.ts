/** JSON-RPC 2.0 message shapes (JSON-RPC 2.0 §4–§5), shared by the parser and the schema check. */
export type JsonRpcId = string | number;

export interface JsonRpcRequest { jsonrpc: '2.0'; id: JsonRpcId; method: string; params?: unknown }
export interface JsonRpcNotification { jsonrpc: '2.0'; method: string; params?: unknown }
export interface JsonRpcResponse { jsonrpc: '2.0'; id: JsonRpcId | null; result?: unknown; error?: { code: number; message: string; data?: unknown } }
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;
