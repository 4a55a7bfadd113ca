// Colleagues' names: the app's agent list where this agent may read it (admins), else names learnt from frames.

import { S, isAdmin } from './state.js';
import { api } from './api.js';

/** A colleague's name where this agent may know it (admins list agents); otherwise just 同事. */
export function agentName(agentId) {
  const a = (S.agents || []).find((x) => x.agent_id === agentId);
  return a ? a.name || a.email : S.names.get(agentId) || '同事';
}

/** Colleagues' names as frames and notes mention them (agents who are not admins cannot list agents). */
export function learnName(agentId, name) { if (agentId && name) S.names.set(agentId, name); }

export async function loadAgents() {
  if (!isAdmin()) return [];
  S.agents = (await api('agents')).items || [];
  return S.agents;
}
