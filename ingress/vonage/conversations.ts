/**
 * Which call a Vonage conversation belongs to. Events of our media socket's
 * leg carry that leg's own uuid and the conversation uuid, never the caller's
 * call uuid (our `provider_call_id`), so the event webhook finds the call
 * through the conversation: remembered in memory when the answer webhook (or
 * a caller-leg event) names both, and — after a restart, when memory is empty
 * — found in the store, where every Vonage media connection's leg row has the
 * conversation as its `media_session` and the call uuid in its resume data.
 */
import type { IngressStore } from '../port.ts';

const MAX_ENTRIES = 50_000;

export class ConversationIndex {
  private readonly byConversation = new Map<string, string>();
  private readonly byCall = new Map<string, string>();

  constructor(private readonly store: IngressStore) {}

  remember(conversationUuid: string, callUuid: string): void {
    if (this.byConversation.get(conversationUuid) === callUuid) return;
    if (this.byConversation.size >= MAX_ENTRIES) {
      // Oldest first (insertion order); forgotten entries are found again in the store.
      const oldest = this.byConversation.keys().next().value;
      if (oldest !== undefined) {
        const call = this.byConversation.get(oldest);
        this.byConversation.delete(oldest);
        if (call !== undefined) this.byCall.delete(call);
      }
    }
    this.byConversation.set(conversationUuid, callUuid);
    this.byCall.set(callUuid, conversationUuid);
  }

  /** The caller's call uuid for a conversation, or null. */
  callUuid(conversationUuid: string): string | null {
    const known = this.byConversation.get(conversationUuid);
    if (known) return known;
    const read = this.store.read(null);
    const leg = read.legs.findOne({ provider: 'vonage', media_session: conversationUuid });
    const call = leg ? read.calls.get(leg.call_id) : undefined;
    if (!call || call.provider !== 'vonage') return null;
    this.remember(conversationUuid, call.provider_call_id);
    return call.provider_call_id;
  }

  /** The conversation of a call uuid, or null when not known on this node. */
  conversationOf(callUuid: string): string | null {
    return this.byCall.get(callUuid) ?? null;
  }
}
