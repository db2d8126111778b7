/** A second thread for sever_gate_test.ts: cuts when told, and says when its cut returned. */
import { SeverGate } from "../../src/dataplane/sever_gate.ts";

const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((event: MessageEvent<SharedArrayBuffer>) => void) | null;
};

scope.onmessage = (event) => {
  const gate = new SeverGate(event.data);
  scope.postMessage("cutting");
  gate.cut();
  scope.postMessage(performance.timeOrigin + performance.now());
};
