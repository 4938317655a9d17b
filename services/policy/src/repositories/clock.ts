/** The time, behind a seam so services can be tested with a fixed clock. */
export class Clock {
  now(): Date {
    return new Date();
  }
}
