import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Where each aggregate's event chain stands, so the next event links to the last one. */
@Entity({ schema: 'broker', name: 'event_chains' })
export class EventChainEntity {
  @PrimaryColumn({ type: 'text' })
  subject!: string;

  @Column({ type: 'integer' })
  sequence!: number;

  @Column({ type: 'text' })
  hash!: string;
}
