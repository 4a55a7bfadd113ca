// What core/ tells the views without importing them (core/ never imports a view): a frame arrived on the agent socket,
// or the token is no longer valid. They are events on window, dispatched synchronously; console.js, the entry,
// hands them to chats/frames.js and session.js.

/** `detail` is the frame, parsed. */
export const FRAME = 'kefu:frame';
/** `detail` is the reason shown on the login screen. */
export const EXPIRED = 'kefu:expired';

export const emit = (type, detail) => dispatchEvent(new CustomEvent(type, { detail }));
