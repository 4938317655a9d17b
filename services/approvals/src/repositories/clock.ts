/** The time, behind a seam so the service can be tested with a clock of its own. */
export class Clock {
  now(): Date {
    return new Date();
  }
}
