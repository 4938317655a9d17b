import { Injectable } from '@nestjs/common';

/** The time, as a repository: tests may replace it. */
@Injectable()
export class Clock {
  now(): Date {
    return new Date();
  }
}
