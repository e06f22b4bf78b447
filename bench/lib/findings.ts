// What a benchmark learned besides its figures (CPU profiles of a phase), collected by the
// harness into the report.
import type { ProfileSummary } from './cpu-profile.js';

export interface ProfileFinding {
  bench: string;
  phase: string;
  service: string;
  summary: ProfileSummary;
}

const profiles: ProfileFinding[] = [];

export const findings = {
  addProfile(finding: ProfileFinding): void {
    profiles.push(finding);
  },
  profiles(): readonly ProfileFinding[] {
    return profiles;
  },
};
