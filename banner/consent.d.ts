// Types of the consentd banner's browser API, for the sites that embed it. Copy this
// file into a project (or reference it) and window.consent, its events and the
// consent:ready / consent:change DOM events are typed. The banner itself is written
// against this file, so it cannot drift from what the banner does.

/** A visitor's decision: an explicit answer per purpose (category) and per partner,
 * by the ids of sites.yaml. */
export interface ConsentChoices {
  categories: Record<string, boolean>;
  partners: Record<string, boolean>;
}

/** What window.consent.set takes: the categories and partners to change; the others
 * keep their current answer (refused if there was no decision yet). */
export interface ConsentChange {
  categories?: Record<string, boolean>;
  partners?: Record<string, boolean>;
}

/** The events of window.consent.on: "ready" once per page view, when the stored
 * decision (or none) is known; "change" after every decision on the page. */
export type ConsentEvent = 'ready' | 'change' | 'consent:ready' | 'consent:change';

/** window.consent, once the banner's script has run. */
export interface ConsentAPI {
  /** Opens the preferences (the second layer). */
  open(): void;
  /** The current decision, or null before any. */
  get(): ConsentChoices | null;
  /** Decides from the page (surface "api"): a grant only counts with its category. */
  set(change: ConsentChange): void;
  /** Calls fn with the decision (or null) on each event; a "ready" listener added
   * after the event is called at once. */
  on(event: ConsentEvent, fn: (choices: ConsentChoices | null) => void): void;
}

declare global {
  interface Window {
    consent: ConsentAPI;
  }
  interface DocumentEventMap {
    'consent:ready': CustomEvent<ConsentChoices | null>;
    'consent:change': CustomEvent<ConsentChoices>;
  }
}
